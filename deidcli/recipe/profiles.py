"""The PS3.15 Basic Application Level Confidentiality Profile and its ten options, as recipes.

Why generated, not hand-written: Table E.1-1 lists ~650 attributes; the only trustworthy copy is the
standard's own table (`recipes/standard/ps3.15-table-e1-1.csv`, parsed here at run time through
`importlib.resources`), so a new edition is a CSV swap and `python recipes/build.py`.

Why a keep-list: the table only says what to *act on*. Our engine is zero trust (an attribute with no
rule is removed), so without an explicit list of safe attributes every image would lose its pixel
module and geometry. `KEEP_MODULES` is that list: attributes of the image, pixel, geometry and
acquisition-technique modules of CT, MR, US, MG/DX and SC, of enhanced multi-frame CT/MR (functional
groups), NM, SEG and the SR document tree, none of them a name, a date, free text or an attribute the table
lists (a few type 1 free-text attributes get a keyed dummy instead, `DUMMY_KEYWORDS`). Code-sequence items are kept only inside the code sequences we keep
(specific rules), never in general, so a code value inside an identification sequence stays removed.

How table codes become actions (see `basic_action`, `option_action` and recipes/README.md):
X -> RETIRER, Z -> EFFACER, D/U -> PSEUDONYMISER, K -> CONSERVER; combined codes take the strictest
action that keeps the instance valid whatever the attribute's type in its IOD.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources

from pydicom.datadict import dictionary_VR, get_entry, keyword_for_tag, tag_for_keyword

from deidcli.errors import UsageError
from deidcli.recipe.model import CID_7050, Action, Recipe, Rule, TagPattern, parse_tag

#: CID 7050 code of the Basic Application Confidentiality Profile.
BASIC_CODE = "113100"
#: Where the standard's table lives inside the installed `deidcli.recipes` package.
TABLE_RESOURCE = ("standard", "ps3.15-table-e1-1.csv")
BASIC_COLUMN = "basic_profile:113100"


@dataclass(frozen=True)
class ProfileOption:
    """One PS3.15 option: the CLI name, its column in Table E.1-1 and its CID 7050 code."""

    name: str
    column: str
    code: str

    @property
    def meaning(self) -> str:
        return CID_7050[self.code]


#: The ten options of Table E.1-1, in the table's column order (CID 7050 meanings).
OPTIONS: dict[str, ProfileOption] = {
    option.name: option
    for option in (
        ProfileOption("retain-safe-private", "retain_safe_private", "113111"),
        ProfileOption("retain-uid", "retain_uid", "113110"),
        ProfileOption("retain-device-id", "retain_device_id", "113109"),
        ProfileOption("retain-institution-id", "retain_institution_id", "113112"),
        ProfileOption("retain-patient-characteristics", "retain_patient_characteristics", "113108"),
        ProfileOption("retain-full-dates", "retain_full_dates", "113106"),
        ProfileOption("retain-modified-dates", "retain_modified_dates", "113107"),
        ProfileOption("clean-descriptors", "clean_descriptors", "113105"),
        ProfileOption("clean-structured-content", "clean_structured_content", "113104"),
        ProfileOption("clean-graphics", "clean_graphics", "113103"),
    )
}

#: Base profiles `build_profile` knows (PS3.15 has one; options are layered on it).
PROFILES = ("basic",)

_DATE_VRS = frozenset({"DA", "DT", "TM"})
#: VRs never allowed in the keep-list: names, dates/times, free text, URLs.
FORBIDDEN_KEEP_VRS = frozenset({"PN", "DA", "DT", "TM", "LT", "ST", "UT", "UC", "UR"})

#: Attributes of the Code Sequence Macro, kept only inside code sequences the recipe keeps.
CODE_ITEM_KEYWORDS = (
    "CodeValue",
    "CodingSchemeDesignator",
    "CodingSchemeVersion",
    "CodeMeaning",
    "LongCodeValue",
    "URNCodeValue",
    "ContextIdentifier",
    "MappingResource",
)

#: The keep-list, by module: attributes that identify nobody and that images need to stay valid and
#: useful. Each keyword is checked by `_keep_rules` (exists in pydicom, VR not forbidden, not in the table).
KEEP_MODULES: dict[str, tuple[str, ...]] = {
    "SOP Common / General Image": (
        "SpecificCharacterSet", "SOPClassUID", "InstanceNumber", "ImageType", "AcquisitionNumber", "ImagesInAcquisition",
        "PatientOrientation", "ImageLaterality", "QualityControlImage", "BurnedInAnnotation",
        "RecognizableVisualFeatures", "LossyImageCompression", "LossyImageCompressionRatio",
        "LossyImageCompressionMethod", "PresentationLUTShape", "ReferencedSOPClassUID",
        "ReferencedFrameNumber", "ReferencedSegmentNumber", "PurposeOfReferenceCodeSequence",
        "DerivationCodeSequence", "SpatialLocationsPreserved",
    ),
    "General Series / Equipment": (
        "Modality", "SeriesNumber", "Laterality", "BodyPartExamined", "PatientPosition",
        "AnatomicalOrientationType", "SmallestPixelValueInSeries", "LargestPixelValueInSeries",
        "Manufacturer", "ManufacturerModelName", "SpatialResolution", "PixelPaddingValue",
        "PixelPaddingRangeLimit", "ConversionType", "NominalScannedPixelSpacing",
    ),
    "Image Pixel / Multi-frame": (
        "SamplesPerPixel", "PhotometricInterpretation", "Rows", "Columns", "BitsAllocated", "BitsStored",
        "HighBit", "PixelRepresentation", "PlanarConfiguration", "PixelAspectRatio",
        "SmallestImagePixelValue", "LargestImagePixelValue", "PixelData", "FloatPixelData",
        "DoubleFloatPixelData", "ExtendedOffsetTable", "ExtendedOffsetTableLengths", "ICCProfile",
        "ColorSpace", "RedPaletteColorLookupTableDescriptor", "GreenPaletteColorLookupTableDescriptor",
        "BluePaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
        "GreenPaletteColorLookupTableData", "BluePaletteColorLookupTableData",
        "SegmentedRedPaletteColorLookupTableData", "SegmentedGreenPaletteColorLookupTableData",
        "SegmentedBluePaletteColorLookupTableData", "NumberOfFrames", "FrameIncrementPointer",
        "FrameTime", "FrameTimeVector", "StereoPairsPresent", "RecommendedDisplayFrameRate", "CineRate",
        "ActualFrameDuration", "StartTrim", "StopTrim", "PreferredPlaybackSequencing", "FrameDelay",
    ),
    "Image Plane / Frame of Reference geometry": (
        "PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness",
        "SpacingBetweenSlices", "SliceLocation", "ImagerPixelSpacing", "PixelSpacingCalibrationType",
        "EstimatedRadiographicMagnificationFactor",
    ),
    "Modality LUT / VOI LUT": (
        "RescaleIntercept", "RescaleSlope", "RescaleType", "ModalityLUTSequence", "LUTDescriptor",
        "LUTData", "ModalityLUTType", "WindowCenter", "WindowWidth", "VOILUTFunction", "VOILUTSequence",
        "PresentationLUTSequence",
    ),
    "Enhanced multi-frame functional groups": (
        "SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence", "PixelMeasuresSequence",
        "PlanePositionSequence", "PlaneOrientationSequence", "FrameVOILUTSequence",
        "PixelValueTransformationSequence", "FrameContentSequence", "InStackPositionNumber",
        "TemporalPositionIndex", "DimensionIndexValues", "DimensionIndexSequence", "DimensionIndexPointer",
        "FunctionalGroupPointer", "FrameAnatomySequence", "FrameLaterality",
    ),
    "Anatomy codes": (
        "AnatomicRegionSequence", "AnatomicRegionModifierSequence", "PrimaryAnatomicStructureSequence",
        "PrimaryAnatomicStructureModifierSequence",
    ),
    "X-ray acquisition technique (CT, DX, MG)": (
        "KVP", "ExposureTime", "XRayTubeCurrent", "Exposure", "ExposureInuAs", "ExposureTimeInuS",
        "XRayTubeCurrentInuA", "FocalSpots", "AnodeTargetMaterial", "FilterMaterial", "FilterType",
        "FilterThicknessMinimum", "FilterThicknessMaximum", "GeneratorPower", "DistanceSourceToDetector",
        "DistanceSourceToPatient", "DistanceSourceToEntrance", "BodyPartThickness", "CompressionForce",
        "Grid", "GridThickness", "GridPitch",
        "GridAspectRatio", "GridPeriod", "GridFocalDistance", "ExposureControlMode", "ExposureStatus",
        "HalfValueLayer", "RelativeXRayExposure", "Sensitivity", "ExposureIndex", "TargetExposureIndex",
        "DeviationIndex", "PositionerType", "PositionerPrimaryAngle", "PositionerSecondaryAngle",
        "CollimatorShape", "CollimatorLeftVerticalEdge", "CollimatorRightVerticalEdge",
        "CollimatorUpperHorizontalEdge", "CollimatorLowerHorizontalEdge", "CenterOfCircularCollimator",
        "RadiusOfCircularCollimator", "VerticesOfThePolygonalCollimator", "ImageAndFluoroscopyAreaDoseProduct",
    ),
    "DX / MG image and detector": (
        "PixelIntensityRelationship", "PixelIntensityRelationshipSign", "PresentationIntentType",
        "ViewPosition", "ViewCodeSequence", "ViewModifierCodeSequence", "PartialView",
        "PartialViewCodeSequence", "BreastImplantPresent", "OrganExposed", "OrganDose", "EntranceDose",
        "EntranceDoseInmGy", "DetectorType", "DetectorConfiguration", "DetectorBinning",
        "DetectorElementPhysicalSize", "DetectorElementSpacing", "DetectorActiveShape",
        "DetectorActiveDimensions", "DetectorActiveOrigin", "DetectorTemperature",
        "DetectorConditionsNominalFlag", "FieldOfViewShape", "FieldOfViewDimensions", "FieldOfViewOrigin",
        "FieldOfViewRotation", "FieldOfViewHorizontalFlip", "CalibrationImage",
    ),
    "CT image": (
        "ScanOptions", "DataCollectionDiameter", "ReconstructionDiameter", "GantryDetectorTilt",
        "TableHeight", "RotationDirection", "ConvolutionKernel", "CTDIvol", "CTDIPhantomTypeCodeSequence",
        "SpiralPitchFactor", "TableSpeed", "TableFeedPerRotation", "TotalCollimationWidth",
        "SingleCollimationWidth", "RevolutionTime", "ReconstructionTargetCenterPatient",
        "DataCollectionCenterPatient", "ExposureModulationType", "EstimatedDoseSaving",
    ),
    "MR image": (
        "ScanningSequence", "SequenceVariant", "MRAcquisitionType", "RepetitionTime", "EchoTime",
        "EchoTrainLength", "InversionTime", "TriggerTime", "AngioFlag", "NumberOfAverages",
        "ImagingFrequency", "ImagedNucleus", "EchoNumbers", "MagneticFieldStrength",
        "NumberOfPhaseEncodingSteps", "PercentSampling", "PercentPhaseFieldOfView", "PixelBandwidth",
        "NominalInterval", "BeatRejectionFlag", "LowRRValue", "HighRRValue", "IntervalsAcquired",
        "IntervalsRejected", "HeartRate", "CardiacNumberOfImages", "TriggerWindow", "AcquisitionMatrix",
        "InPlanePhaseEncodingDirection", "FlipAngle", "VariableFlipAngleFlag", "SAR", "dBdt",
        "TemporalPositionIdentifier", "NumberOfTemporalPositions", "TemporalResolution",
        "DiffusionBValue", "DiffusionGradientOrientation",
    ),
    "US image and regions": (
        "SequenceOfUltrasoundRegions", "RegionSpatialFormat", "RegionDataType", "RegionFlags",
        "RegionLocationMinX0", "RegionLocationMinY0", "RegionLocationMaxX1", "RegionLocationMaxY1",
        "ReferencePixelX0", "ReferencePixelY0", "PhysicalUnitsXDirection", "PhysicalUnitsYDirection",
        "ReferencePixelPhysicalValueX", "ReferencePixelPhysicalValueY", "PhysicalDeltaX", "PhysicalDeltaY",
        "TransducerFrequency", "DopplerCorrectionAngle", "SteeringAngle", "DopplerSampleVolumeXPosition",
        "DopplerSampleVolumeYPosition", "TMLinePositionX0", "TMLinePositionY0", "TMLinePositionX1",
        "TMLinePositionY1", "PulseRepetitionFrequency", "PixelComponentOrganization",
        "PixelComponentMask", "PixelComponentRangeStart", "PixelComponentRangeStop",
        "PixelComponentPhysicalUnits", "PixelComponentDataType", "NumberOfTableBreakPoints",
        "TableOfXBreakPoints", "TableOfYBreakPoints", "NumberOfTableEntries", "TableOfPixelValues",
        "TableOfParameterValues", "NumberOfStages", "NumberOfViewsInStage", "StageNumber", "ViewNumber",
        "UltrasoundColorDataPresent", "TransducerType", "MechanicalIndex", "BoneThermalIndex",
        "CranialThermalIndex", "SoftTissueThermalIndex", "SoftTissueFocusThermalIndex",
        "SoftTissueSurfaceThermalIndex", "DepthOfScanField", "TransducerScanPatternCodeSequence",
    ),
    "Multi-frame dimensions and frame content": (
        "DimensionOrganizationSequence", "DimensionOrganizationType", "FrameAcquisitionNumber",
        "FrameAcquisitionDuration", "CardiacCyclePosition", "RespiratoryCyclePosition", "StackID",
        "ConcatenationFrameOffsetNumber", "InConcatenationNumber", "InConcatenationTotalNumber",
        "RepresentativeFrameNumber", "PlanePositionVolumeSequence", "ImagePositionVolume",
        "PlaneOrientationVolumeSequence", "ImageOrientationVolume", "TemporalPositionSequence",
        "TemporalPositionTimeOffset", "IrradiationEventIdentificationSequence",
    ),
    "Enhanced CT/MR image description and equipment": (
        "SoftwareVersions", "FrameType", "PixelPresentation", "VolumetricProperties",
        "VolumeBasedCalculationTechnique", "ComplexImageComponent", "AcquisitionContrast", "ContentQualification",
        "AcquisitionDuration", "ContentLabel", "ContrastBolusUsageSequence", "ContrastBolusAgentNumber",
        "ContrastBolusAgentAdministered", "ContrastBolusAgentDetected", "ContrastBolusAgentPhase",
        "ContrastBolusAgentSequence", "ContrastBolusAdministrationRouteSequence",
        "ContrastBolusIngredientCodeSequence", "ContrastBolusVolume", "ContrastBolusIngredientConcentration",
    ),
    "Enhanced CT functional groups": (
        "CTImageFrameTypeSequence", "CTAcquisitionTypeSequence", "AcquisitionType", "TubeAngle", "ConstantVolumeFlag",
        "FluoroscopyFlag", "CTAcquisitionDetailsSequence", "CTTableDynamicsSequence", "CTPositionSequence",
        "TablePosition", "CTGeometrySequence", "DistanceSourceToDataCollectionCenter", "CTReconstructionSequence",
        "ReconstructionAlgorithm", "ConvolutionKernelGroup", "ReconstructionFieldOfView",
        "ReconstructionPixelSpacing", "ReconstructionAngle", "CTExposureSequence", "ExposureTimeInms",
        "XRayTubeCurrentInmA", "ExposureInmAs", "WaterEquivalentDiameter",
        "WaterEquivalentDiameterCalculationMethodCodeSequence", "CTXRayDetailsSequence",
        "CalciumScoringMassFactorPatient", "CalciumScoringMassFactorDevice",
    ),
    "Enhanced MR image, pulse sequence and functional groups": (
        "ResonantNucleus", "KSpaceFiltering", "ApplicableSafetyStandardAgency", "PulseSequenceName",
        "EchoPulseSequence", "MultipleSpinEcho", "MultiPlanarExcitation", "PhaseContrast", "TimeOfFlightContrast",
        "Spoiling", "SteadyStatePulseSequence", "EchoPlanarPulseSequence", "SaturationRecovery",
        "SpectrallySelectedSuppression", "OversamplingPhase", "GeometryOfKSpaceTraversal", "SegmentedKSpaceTraversal",
        "RectilinearPhaseEncodeReordering", "NumberOfKSpaceTrajectories", "CoverageOfKSpace", "MagnetizationTransfer",
        "T2Preparation", "BloodSignalNulling", "SpectrallySelectedExcitation", "SpatialPresaturation", "Tagging",
        "TagSpacingFirstDimension", "TagSpacingSecondDimension", "TagAngleFirstAxis", "TagAngleSecondAxis",
        "TagThickness", "TaggingDelay", "TransmitterFrequency", "ChemicalShiftReference", "Decoupling",
        "DataPointRows", "DataPointColumns", "MRSpectroscopyAcquisitionType", "FrequencyCorrection",
        "WaterReferencedPhaseCorrection", "TransmitCoilType", "MRImageFrameTypeSequence",
        "MRTimingAndRelatedParametersSequence", "RFEchoTrainLength", "GradientEchoTrainLength",
        "SpecificAbsorptionRateSequence", "SpecificAbsorptionRateDefinition", "SpecificAbsorptionRateValue",
        "GradientOutputType", "GradientOutput", "OperatingModeSequence", "OperatingModeType", "OperatingMode",
        "MRFOVGeometrySequence", "MRAcquisitionFrequencyEncodingSteps", "MRAcquisitionPhaseEncodingStepsInPlane",
        "MRAcquisitionPhaseEncodingStepsOutOfPlane", "MREchoSequence", "EffectiveEchoTime", "MRModifierSequence",
        "InversionRecovery", "InversionTimes", "FlowCompensation", "FlowCompensationDirection", "PartialFourier",
        "PartialFourierDirection", "ParallelAcquisition", "ParallelAcquisitionTechnique",
        "ParallelReductionFactorInPlane", "ParallelReductionFactorOutOfPlane", "ParallelReductionFactorSecondInPlane",
        "MRImagingModifierSequence", "MRReceiveCoilSequence", "ReceiveCoilName", "ReceiveCoilType",
        "QuadratureReceiveCoil", "MultiCoilDefinitionSequence", "MultiCoilElementName", "MultiCoilElementUsed",
        "MRTransmitCoilSequence", "TransmitCoilName", "MRDiffusionSequence", "DiffusionDirectionality",
        "DiffusionGradientDirectionSequence", "DiffusionBMatrixSequence", "DiffusionBValueXX", "DiffusionBValueXY",
        "DiffusionBValueXZ", "DiffusionBValueYY", "DiffusionBValueYZ", "DiffusionBValueZZ", "DiffusionAnisotropyType",
        "MRAveragesSequence", "MRSpatialSaturationSequence", "SlabThickness", "SlabOrientation", "MidSlabPosition",
        "MRVelocityEncodingSequence", "VelocityEncodingDirection", "VelocityEncodingMinimumValue",
        "VelocityEncodingMaximumValue",
    ),
    "Cardiac and respiratory synchronization": (
        "CardiacSynchronizationTechnique", "CardiacSignalSource", "CardiacRRIntervalSpecified",
        "CardiacBeatRejectionTechnique", "CardiacFramingType", "SkipBeats", "CardiacSynchronizationSequence",
        "NominalPercentageOfCardiacPhase", "NominalCardiacTriggerDelayTime", "ActualCardiacTriggerDelayTime",
        "RRIntervalTimeNominal", "NominalCardiacTriggerTimePriorToRPeak", "ActualCardiacTriggerTimePriorToRPeak",
        "RespiratoryMotionCompensationTechnique", "RespiratorySignalSource", "RespiratoryTriggerType",
        "RespiratoryTriggerDelayThreshold", "BulkMotionCompensationTechnique", "BulkMotionSignalSource",
        "RespiratorySynchronizationSequence", "RespiratoryIntervalTime", "NominalPercentageOfRespiratoryPhase",
        "NominalRespiratoryTriggerDelayTime", "ActualRespiratoryTriggerDelayTime", "StartingRespiratoryAmplitude",
        "StartingRespiratoryPhase", "EndingRespiratoryAmplitude", "EndingRespiratoryPhase",
    ),
    "NM image, multi-frame, isotope, detector and tomo": (
        "CountsAccumulated", "AcquisitionTerminationCondition", "TableTraverse", "CountRate", "CorrectedImage",
        "WholeBodyTechnique", "ScanVelocity", "ScanLength", "TypeOfDetectorMotion", "NumberOfEnergyWindows",
        "EnergyWindowVector", "NumberOfDetectors", "DetectorVector", "NumberOfPhases", "PhaseVector",
        "NumberOfRotations", "RotationVector", "NumberOfRRIntervals", "RRIntervalVector", "NumberOfTimeSlots",
        "TimeSlotVector", "NumberOfSlices", "SliceVector", "AngularViewVector", "TimeSlotInformationSequence",
        "TimeSlotTime", "EnergyWindowInformationSequence", "EnergyWindowRangeSequence", "EnergyWindowLowerLimit",
        "EnergyWindowUpperLimit", "RadiopharmaceuticalInformationSequence", "RadionuclideCodeSequence",
        "AdministrationRouteCodeSequence", "RadionuclideTotalDose", "RadionuclideHalfLife",
        "RadionuclidePositronFraction", "RadiopharmaceuticalCodeSequence", "DetectorInformationSequence",
        "CollimatorType", "FocalDistance", "XFocusCenter", "YFocusCenter", "ZoomFactor", "ZoomCenter",
        "CenterOfRotationOffset", "StartAngle", "RadialPosition", "RotationInformationSequence", "AngularStep",
        "ScanArc", "NumberOfFramesInRotation", "GatedInformationSequence", "DataInformationSequence",
        "PhaseInformationSequence", "PhaseDelay", "PauseBetweenFrames", "NumberOfFramesInPhase", "TriggerVector",
        "NumberOfTriggersInPhase", "PhaseDescription", "SliceProgressionDirection", "PatientOrientationCodeSequence",
        "PatientOrientationModifierCodeSequence", "PatientGantryRelationshipCodeSequence",
    ),
    "Segmentation (SEG) and references to source images": (
        "SegmentationType", "SegmentationFractionalType", "MaximumFractionalValue", "SegmentsOverlap",
        "SegmentSequence", "SegmentNumber", "SegmentAlgorithmType", "SegmentAlgorithmName",
        "SegmentedPropertyCategoryCodeSequence", "SegmentedPropertyTypeCodeSequence",
        "SegmentedPropertyTypeModifierCodeSequence", "RecommendedDisplayCIELabValue",
        "RecommendedDisplayGrayscaleValue", "SegmentIdentificationSequence", "ReferencedSeriesSequence",
        "ReferencedInstanceSequence", "DerivationImageSequence",
    ),
    "Structured report (SR) document structure": (
        "CompletionFlag", "VerificationFlag", "PreliminaryFlag", "ValueType", "RelationshipType",
        "ContinuityOfContent", "ConceptNameCodeSequence", "ConceptCodeSequence", "MeasuredValueSequence",
        "MeasurementUnitsCodeSequence", "NumericValue", "FloatingPointValue", "NumericValueQualifierCodeSequence",
        "ReferencedContentItemIdentifier", "ReferencedSOPSequence", "CurrentRequestedProcedureEvidenceSequence",
        "PertinentOtherEvidenceSequence", "GraphicType", "GraphicData",
    ),
    "Waveform (ECG, haemodynamic, audio): the recording, its channels and filters": (
        "WaveformSequence", "MultiplexGroupTimeOffset", "TriggerTimeOffset", "TriggerSamplePosition",
        "WaveformOriginality", "NumberOfWaveformChannels", "NumberOfWaveformSamples", "SamplingFrequency",
        "ChannelDefinitionSequence", "WaveformChannelNumber", "ChannelStatus", "ChannelSourceSequence",
        "ChannelSourceModifiersSequence", "ChannelSensitivity", "ChannelSensitivityUnitsSequence",
        "ChannelSensitivityCorrectionFactor", "ChannelBaseline", "ChannelTimeSkew", "ChannelSampleSkew",
        "ChannelOffset", "WaveformBitsStored", "FilterLowFrequency", "FilterHighFrequency", "NotchFilterFrequency",
        "NotchFilterBandwidth", "ChannelMinimumValue", "ChannelMaximumValue", "WaveformBitsAllocated",
        "WaveformSampleInterpretation", "WaveformPaddingValue", "WaveformData", "WaveformDataDisplayScale",
        "WaveformDisplayBackgroundCIELabValue", "ChannelRecommendedDisplayCIELabValue", "ChannelPosition",
        "DisplayShadingFlag", "FractionalChannelDisplayScale", "AbsoluteChannelDisplayScale",
        "WaveformPresentationGroupSequence", "PresentationGroupNumber", "ChannelDisplaySequence",
        "SynchronizationTrigger", "AcquisitionTimeSynchronized", "TimeDistributionProtocol",
    ),
    "RT plan geometry and RT dose grid": (
        "RTPlanGeometry", "ReferencedStructureSetSequence", "DoseUnits", "DoseType", "DoseSummationType",
        "GridFrameOffsetVector", "DoseGridScaling", "TissueHeterogeneityCorrection", "ReferencedRTPlanSequence",
        "RTPlanRelationship", "ReferencedFractionGroupSequence", "ReferencedFractionGroupNumber", "ReferencedBeamSequence",
        "ReferencedBeamNumber",
    ),
}

#: LO/SH attributes allowed in the keep-list: vendor names and technique terms, not descriptions.
KEEP_TEXT_ALLOWED = frozenset(
    {"Manufacturer", "ManufacturerModelName", "RescaleType", "ModalityLUTType", "FilterType", "ConvolutionKernel",
     "ImagedNucleus",
     # type 1/1C in enhanced multi-frame IODs, vendor or technique terms (not descriptions), not in Table E.1-1:
     # removing them breaks the instance, emptying a type 1 is invalid
     "SoftwareVersions", "PulseSequenceName", "StackID", "ReceiveCoilName", "TransmitCoilName",
     "MultiCoilElementName", "CardiacFramingType", "SegmentAlgorithmName"}
)

#: X/Z sequences that are type 3 in every IOD: an empty sequence is invalid there (dciodvfy: "number of
#: items 0, 1-n required"), so they are removed instead of emptied.
TYPE3_SEQUENCES = frozenset({"ReferencedStudySequence"})

#: Type 2 attributes of our target IODs whose value is free text: kept present but emptied (EFFACER),
#: so the output stays valid without carrying the text.
EMPTY_KEYWORDS = (
    "PositionReferenceIndicator", "ContentDescription", "ReceiveCoilManufacturerName", "TransmitCoilManufacturerName",
    "PerformedProcedureCodeSequence",
)


#: Type 1 attributes of our target IODs whose value is free text the table does not list: replaced by a
#: keyed dummy token (PSEUDONYMISER), distinct per value, so the instance stays valid without the text.
#: TextValue is type 1C in every SR TEXT content item: removing it breaks the document tree.
DUMMY_KEYWORDS = ("SegmentLabel", "TextValue")


# -- the standard's table ----------------------------------------------------------------------------
@dataclass(frozen=True)
class TableRow:
    """One row of Table E.1-1: the tag text (8 hex digits, `60xx3000`, or `private`) and its codes."""

    tag: str
    keyword: str
    basic: str
    options: dict[str, str]  # option CLI name -> code, only where the option changes something

    @property
    def pattern(self) -> TagPattern | None:
        return None if self.tag == "private" else parse_tag(self.tag)


def table_text() -> str:
    """The Table E.1-1 CSV bundled in `deidcli.recipes` (never read from outside the package)."""
    folder, name = TABLE_RESOURCE
    return resources.files("deidcli.recipes").joinpath(folder).joinpath(name).read_text(encoding="utf-8")


@cache
def table_rows() -> tuple[TableRow, ...]:
    """Parse the bundled Table E.1-1 once per process."""
    reader = csv.DictReader(io.StringIO(table_text()))
    columns = {option.column: option.name for option in OPTIONS.values()}
    rows = []
    for record in reader:
        options = {}
        for header, value in record.items():
            column = header.split(":")[0]
            if column in columns and value.strip():
                options[columns[column]] = value.strip()
        rows.append(TableRow(record["tag"].strip().lower(), record["keyword"].strip(), record[BASIC_COLUMN].strip(), options))
    return tuple(rows)


@cache
def table_by_tag() -> dict[int, TableRow]:
    """Exact public tags of the table, for checks (`deid check-recipe`) comparing a recipe to the profile."""
    return {row.pattern.value: row for row in table_rows() if row.pattern is not None and row.pattern.is_exact}


def vr_of(pattern: TagPattern) -> str:
    """pydicom's VR for a tag or repeating-group pattern ('' when the dictionary does not know it)."""
    try:
        return dictionary_VR(pattern.value)
    except KeyError:
        return ""


def keyword_of(pattern: TagPattern, fallback: str = "") -> str:
    """pydicom's keyword; else the table's, unless the table only says 'Unknown'."""
    keyword = keyword_for_tag(pattern.value) if pattern.is_exact else ""
    if not keyword and not pattern.is_exact:
        try:
            keyword = get_entry(pattern.value)[4]
        except KeyError:
            keyword = ""
    if keyword:
        return keyword
    return "" if fallback.startswith("Unknown") else fallback


# -- codes to actions -------------------------------------------------------------------------------
#: Table E.1-1 codes (basic column, and K from options) -> our action for a non-sequence attribute.
BASIC_CODES: dict[str, Action] = {
    "X": Action.RETIRER,
    "Z": Action.EFFACER,
    "D": Action.PSEUDONYMISER,
    "U": Action.PSEUDONYMISER,
    "K": Action.CONSERVER,
    "X/Z": Action.EFFACER,
    "X/D": Action.PSEUDONYMISER,
    "Z/D": Action.PSEUDONYMISER,
    "X/Z/D": Action.PSEUDONYMISER,
    "X/Z/U*": Action.PSEUDONYMISER,
}


def basic_action(code: str, vr: str, keyword: str = "") -> Action:
    """Map a basic-profile code onto our action.

    Combined codes let the standard pick by the attribute's type in the IOD, which we do not know, so we
    take the strictest action that is valid for every type: X/Z -> EFFACER (an empty value is allowed
    for types 2 and 3; removal would break type 2), X/D, Z/D, X/Z/D -> PSEUDONYMISER (a type 1 needs a
    value).

    Sequences cannot hold a pseudonym: D-like codes keep the sequence (CONSERVER) so the engine recurses
    and every item attribute meets its own rule (zero trust inside); X/Z and Z empty it, except X/Z
    sequences that are type 3 everywhere (`TYPE3_SEQUENCES`), removed because an empty sequence is not a
    valid type 3 value. A code sequence with a D-like code (InstitutionCodeSequence,
    PersonIdentificationCodeSequence) is emptied: its codes identify and there is no dummy code.
    An unknown code raises ValueError: a typo in the table must fail the build, not pick an action.
    """
    if code not in BASIC_CODES:
        raise ValueError(f"unknown Table E.1-1 code {code!r}; known: {', '.join(BASIC_CODES)}")
    if vr == "SQ":
        if code == "X" or (code == "X/Z" and keyword in TYPE3_SEQUENCES):
            return Action.RETIRER
        if code in ("Z", "X/Z") or is_code_sequence(keyword):
            return Action.EFFACER
        return Action.CONSERVER
    return BASIC_CODES[code]


def option_action(code: str, vr: str, basic: Action) -> Action:
    """Map an option's cell onto our action: K keeps; C (clean) depends on the VR.

    We cannot clean free text automatically, so C on text keeps the basic action (removed or emptied:
    nothing identifying is left, which is what cleaning asks). C on a date/time shifts it (keyed
    per-patient offset); C on a sequence keeps it and lets each item attribute meet its own rule.
    """
    if code == "K":
        return Action.CONSERVER
    if code == "C":
        if vr in _DATE_VRS:
            return Action.PSEUDONYMISER
        if vr == "SQ":
            return Action.CONSERVER
    return basic


# -- building recipes -----------------------------------------------------------------------------
def _table_rule(row: TableRow, action: Action) -> Rule:
    """A general rule for one table row; `where` records the origin for messages."""
    pattern = row.pattern
    assert pattern is not None
    return Rule(pattern, action, keyword_of(pattern, row.keyword), vr_of(pattern), where=f"Table E.1-1 {row.tag}")


def _keyword_rule(keyword: str, action: Action, module: str) -> Rule:
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise ValueError(f"keep-list {module}: {keyword!r} is not in pydicom's dictionary")
    pattern = parse_tag(f"0x{tag:08x}")
    return Rule(pattern, action, keyword, vr_of(pattern), where=f"keep-list {module}")


def is_code_sequence(keyword: str) -> bool:
    """Whether items of this sequence follow the Code Sequence Macro (so code-item rules apply)."""
    return keyword.endswith("CodeSequence") or keyword in {
        "ChannelSourceSequence", "ChannelSourceModifiersSequence", "ChannelSensitivityUnitsSequence",
        "AnatomicRegionSequence", "AnatomicRegionModifierSequence", "PrimaryAnatomicStructureSequence",
        "PrimaryAnatomicStructureModifierSequence", "ContrastBolusAgentSequence",
        "ContrastBolusAdministrationRouteSequence",
    }


def code_item_rules(sequence_keyword: str) -> list[Rule]:
    """Specific CONSERVER rules for the Code Sequence Macro inside one kept code sequence."""
    parent_tag = tag_for_keyword(sequence_keyword)
    assert parent_tag is not None
    parent = parse_tag(f"0x{parent_tag:08x}")
    rules = []
    for keyword in CODE_ITEM_KEYWORDS:
        tag = tag_for_keyword(keyword)
        assert tag is not None
        pattern = parse_tag(f"0x{tag:08x}")
        rules.append(Rule(pattern, Action.CONSERVER, keyword, vr_of(pattern), parent=parent,
                          where=f"code items of {sequence_keyword}"))
    return rules


@cache
def _keep_rules() -> tuple[Rule, ...]:
    """The keep-list as rules, validated: a broken keep-list must fail the build, not leak."""
    listed = set(table_by_tag())
    rules: list[Rule] = []
    for module, keywords in KEEP_MODULES.items():
        for keyword in keywords:
            rule = _keyword_rule(keyword, Action.CONSERVER, module)
            if rule.vr in FORBIDDEN_KEEP_VRS or (rule.vr in ("LO", "SH") and keyword not in KEEP_TEXT_ALLOWED):
                raise ValueError(f"keep-list {module}: {keyword} has VR {rule.vr}, which may identify")
            if rule.pattern.value in listed:
                raise ValueError(f"keep-list {module}: {keyword} is in Table E.1-1; the table decides it")
            rules.append(rule)
    for keyword in EMPTY_KEYWORDS:
        rules.append(_keyword_rule(keyword, Action.EFFACER, "type 2 free text"))
    for keyword in DUMMY_KEYWORDS:
        rules.append(_keyword_rule(keyword, Action.PSEUDONYMISER, "type 1 free text"))
    for rule in rules[-len(EMPTY_KEYWORDS) - len(DUMMY_KEYWORDS):]:
        if rule.pattern.value in listed:
            raise ValueError(f"{rule.where}: {rule.keyword} is in Table E.1-1; the table decides it")
    return tuple(rules)


def keep_list() -> list[Rule]:
    """The general CONSERVER/EFFACER/PSEUDONYMISER rules added to the table's rules (public for tests and docs)."""
    return list(_keep_rules())


def _code_item_rules_for(rules: Iterable[Rule]) -> list[Rule]:
    """Code-item specific rules for the kept code sequences among `rules`."""
    specific: list[Rule] = []
    for rule in rules:
        if rule.action is Action.CONSERVER and rule.vr == "SQ" and is_code_sequence(rule.keyword):
            specific.extend(code_item_rules(rule.keyword))
    return specific


def _validate_options(options: Sequence[str]) -> list[ProfileOption]:
    unknown = [name for name in options if name not in OPTIONS]
    if unknown:
        raise UsageError(
            f"unknown profile option(s) {', '.join(map(repr, unknown))}; valid options: {', '.join(OPTIONS)}"
        )
    return list(dict.fromkeys(OPTIONS[name] for name in options))


@dataclass(frozen=True)
class TableDecision:
    """The action for one table row under the chosen options, and whether an option decided it."""

    row: TableRow
    action: Action
    by_option: bool


def table_decisions(options: Sequence[str] = ()) -> list[TableDecision]:
    """Action per table row for the basic profile with `options`; a later option wins over earlier ones.

    An option cell counts only where it changes something we can do: K, or C on a date or a sequence
    (C on text leaves the basic action, see `option_action`). The 'private' row is skipped: zero trust
    removes private tags already, and we ship no list of safe private attributes.
    """
    chosen = _validate_options(options)
    decisions = []
    for row in table_rows():
        pattern = row.pattern
        if pattern is None or pattern.group == 0x0002:
            continue  # 'private' (see above); file meta is rebuilt by the writer, never taken from a recipe
        vr = vr_of(pattern)
        basic = basic_action(row.basic, vr, keyword_of(pattern, row.keyword))
        action, by_option = basic, False
        for option in chosen:
            code = row.options.get(option.name)
            if code and (code == "K" or vr in _DATE_VRS or vr == "SQ"):
                action, by_option = option_action(code, vr, basic), True
        decisions.append(TableDecision(row, action, by_option))
    return decisions


def build_profile(name: str = "basic", options: Sequence[str] = ()) -> Recipe:
    """The basic profile (table + keep-list) with PS3.15 options applied in order.

    A later option overrides the basic action (and earlier options) for the attributes it names.
    `method_codes` lists exactly 113100 and each option's code, so the output's
    DeidentificationMethodCodeSequence says what was done. Unknown names raise UsageError.
    """
    if name not in PROFILES:
        raise UsageError(f"unknown profile {name!r}; valid profiles: {', '.join(PROFILES)}")
    chosen = _validate_options(options)
    decisions = table_decisions(options)
    general = [_table_rule(d.row, d.action) for d in decisions]
    general.extend(_keep_rules())
    general.sort(key=lambda rule: (rule.pattern.value, rule.pattern.mask))
    # code items are kept only in code sequences kept on purpose (keep-list or an option's K/C), never in
    # the ones the basic profile recurses into to clean them
    on_purpose = [r for r in general if r.where.startswith("keep-list")]
    on_purpose += [_table_rule(d.row, d.action) for d in decisions if d.by_option]
    specific = _code_item_rules_for(on_purpose)
    specific.sort(key=lambda rule: (rule.parent.value if rule.parent else 0, rule.pattern.value))
    codes = [BASIC_CODE, *(option.code for option in chosen)]
    description = "DICOM PS3.15 Basic Application Level Confidentiality Profile (Table E.1-1)"
    if chosen:
        description += " with the " + ", ".join(option.meaning for option in chosen)
    description += "; attributes it does not list are removed unless on the deidcli keep-list (zero trust)."
    return Recipe(
        name=name + "".join(f"+{option.name}" for option in chosen),
        rules=general,
        specific_rules=specific,
        version="PS3.15 2025",
        description=description,
        method_codes=codes,
    )


def apply_options(recipe: Recipe, options: Sequence[str]) -> Recipe:
    """Layer PS3.15 options on any recipe: each option overrides the rules of the attributes it decides.

    Used by `deid recipe export NAME --option ...` for built-ins other than basic.
    """
    chosen = _validate_options(options)
    if not chosen:
        return recipe
    by_pattern = {(rule.pattern.value, rule.pattern.mask): rule for rule in recipe.rules if rule.creator is None}
    decided = [d for d in table_decisions(options) if d.by_option]
    for decision in decided:
        pattern = decision.row.pattern
        assert pattern is not None
        key = (pattern.value, pattern.mask)
        existing = by_pattern.get(key)
        by_pattern[key] = (
            dataclasses.replace(existing, action=decision.action) if existing else _table_rule(decision.row, decision.action)
        )
    general = sorted(by_pattern.values(), key=lambda rule: (rule.pattern.value, rule.pattern.mask))
    general += [rule for rule in recipe.rules if rule.creator is not None]
    seen = {(r.parent.value, r.pattern.value) for r in recipe.specific_rules if r.parent is not None}
    extra = [
        r for r in _code_item_rules_for(_table_rule(d.row, d.action) for d in decided)
        if r.parent is not None and (r.parent.value, r.pattern.value) not in seen
    ]
    return dataclasses.replace(
        recipe,
        name=recipe.name + "".join(f"+{option.name}" for option in chosen),
        rules=general,
        specific_rules=[*recipe.specific_rules, *extra],
        method_codes=list(dict.fromkeys([*recipe.method_codes, *(option.code for option in chosen)])),
    )


def option_keeping(tag: int, method_codes: Iterable[str] = ()) -> ProfileOption | None:
    """The option that lets a recipe keep (K) or clean (C) `tag`, preferring one the recipe declares.

    Used by check-recipe: keeping StudyDate is a risk, unless the recipe declares retain-full-dates.
    """
    row = table_by_tag().get(tag)
    if row is None:
        return None
    declared = set(method_codes)
    candidates = [OPTIONS[name] for name, code in row.options.items() if code in ("K", "C")]
    for option in candidates:
        if option.code in declared:
            return option
    return candidates[0] if candidates else None


def format_recipe(recipe: Recipe) -> str:
    """The recipe as JSON text, one rule per line: what `recipes/build.py` writes and `deid recipe export`
    prints. Deterministic (rules in the recipe's order), so regenerated files diff cleanly."""
    document = recipe.to_json()
    general = document.pop("general_rules")
    specific = document.pop("specific_rules")
    lines = ["{"]
    for key, value in document.items():
        lines.append(f"  {json.dumps(key)}: {json.dumps(value, ensure_ascii=False)},")
    lines.append('  "general_rules": {')
    entries = [f"    {json.dumps(tag)}: {json.dumps(entry, ensure_ascii=False)}" for tag, entry in general.items()]
    lines.append(",\n".join(entries))
    lines.append("  },")
    lines.append('  "specific_rules": {')
    entries = [f"    {json.dumps(tag)}: {json.dumps(entry, ensure_ascii=False)}" for tag, entry in specific.items()]
    lines.append(",\n".join(entries))
    lines.append("  }")
    lines.append("}")
    return "\n".join(line for line in lines if line) + "\n"
